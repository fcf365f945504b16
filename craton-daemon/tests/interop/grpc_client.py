#!/usr/bin/env python3
"""A gRPC client of craton-hsm-daemon written with Python's grpcio, its stubs generated
from the daemon's proto at run time: the proper test that the interface is usable from a
language we did not write the server in.

usage: grpc_client.py PROTO_DIR OUT_DIR HOST:PORT CA CERT KEY SO_PIN USER_PIN
Prints "ok: ..." and exits 0 when a token set-up and a sign/verify round trip work, and a
wrong signature is refused with CKR_SIGNATURE_INVALID.
"""
import os
import sys

from grpc_tools import protoc


def main():
    proto_dir, out_dir, target, ca, cert, key, so_pin, user_pin = sys.argv[1:9]
    os.makedirs(out_dir, exist_ok=True)
    rc = protoc.main([
        "protoc", f"-I{proto_dir}", f"--python_out={out_dir}", f"--grpc_python_out={out_dir}",
        os.path.join(proto_dir, "craton/hsm/v1/hsm.proto"),
    ])
    if rc != 0:
        sys.exit(f"protoc failed with {rc}")
    sys.path.insert(0, out_dir)
    import grpc
    from craton.hsm.v1 import hsm_pb2 as pb
    from craton.hsm.v1 import hsm_pb2_grpc as rpc

    def read(p):
        with open(p, "rb") as f:
            return f.read()

    creds = grpc.ssl_channel_credentials(read(ca), read(key), read(cert))
    channel = grpc.secure_channel(target, creds, options=[
        ("grpc.ssl_target_name_override", "localhost"),
    ])
    hsm = rpc.HsmStub(channel)

    CKU_SO, CKU_USER = 0, 1
    CKM_EC_KEY_PAIR_GEN, CKM_ECDSA_SHA384 = 0x1040, 0x1045
    CKA_SIGN, CKA_VERIFY, CKA_EC_PARAMS = 0x108, 0x10A, 0x180
    CKR_SIGNATURE_INVALID = 0xC0
    P384 = bytes.fromhex("06052b81040022")

    status = hsm.GetStatus(pb.StatusRequest(), timeout=30)
    hsm.InitToken(pb.InitTokenRequest(slot=0, so_pin=so_pin.encode(), label="python"), timeout=30)
    s = hsm.OpenSession(pb.OpenSessionRequest(slot=0, read_write=True), timeout=30).session
    hsm.Login(pb.LoginRequest(session=s, user_type=CKU_SO, pin=so_pin.encode()), timeout=30)
    hsm.InitPin(pb.InitPinRequest(session=s, pin=user_pin.encode()), timeout=30)
    hsm.Logout(pb.SessionRequest(session=s), timeout=30)
    hsm.Login(pb.LoginRequest(session=s, user_type=CKU_USER, pin=user_pin.encode()), timeout=30)
    pair = hsm.GenerateKeyPair(pb.GenerateKeyPairRequest(
        session=s,
        mechanism=pb.Mechanism(type=CKM_EC_KEY_PAIR_GEN),
        public_template=[pb.Attribute(type=CKA_EC_PARAMS, bytes=P384),
                         pb.Attribute(type=CKA_VERIFY, boolean=True)],
        private_template=[pb.Attribute(type=CKA_SIGN, boolean=True)],
    ), timeout=30)
    mech = pb.Mechanism(type=CKM_ECDSA_SHA384)
    data = b"signed from Python through grpcio"
    # Multi-part signing, single-part verification.
    hsm.SignInit(pb.OperationInit(session=s, mechanism=mech, key=pair.private_key), timeout=30)
    hsm.SignUpdate(pb.DataRequest(session=s, data=data[:10]), timeout=30)
    hsm.SignUpdate(pb.DataRequest(session=s, data=data[10:]), timeout=30)
    sig = hsm.SignFinal(pb.SessionRequest(session=s), timeout=30).data
    hsm.VerifyInit(pb.OperationInit(session=s, mechanism=mech, key=pair.public_key), timeout=30)
    hsm.Verify(pb.VerifyRequest(session=s, data=data, signature=sig), timeout=30)
    hsm.VerifyInit(pb.OperationInit(session=s, mechanism=mech, key=pair.public_key), timeout=30)
    try:
        hsm.Verify(pb.VerifyRequest(session=s, data=data + b"!", signature=sig), timeout=30)
        sys.exit("a wrong signature verified")
    except grpc.RpcError as e:
        ckr = dict(e.trailing_metadata() or ()).get("craton-ckr")
        if ckr != str(CKR_SIGNATURE_INVALID):
            sys.exit(f"a wrong signature failed with {e.code()} ckr={ckr}, not CKR_SIGNATURE_INVALID")
    hsm.CloseSession(pb.SessionRequest(session=s), timeout=30)
    print(f"ok: daemon {status.version}, ECDSA P-384 multi-part sign + verify "
          f"({len(sig)}-byte signature), bad signature -> CKR_SIGNATURE_INVALID")


if __name__ == "__main__":
    main()
